; Inno Setup 6 script: turns the PyInstaller bundle into a double-click setup.exe.
;
; On Windows, from the repository root, after building the bundle
; (`make installer`, or `pyinstaller --noconfirm --clean build_installer.spec`):
;
;   iscc packaging\windows\PneumoScan.iss
;
; Reads   dist\PneumoScan\            (the one-folder bundle, PneumoScan.exe inside)
; Writes  dist\PneumoScan-<version>-windows-x64-setup.exe
;
; The version is read from pyproject.toml ([project] version); pass
; /DAppVersion=x.y.z to iscc to override it. Not built or tested on the Linux
; build machine: see docs/INSTALLER.md.

#define AppName "PneumoScan"
#define AppExe "PneumoScan.exe"
#define RepoRoot AddBackslash(SourcePath) + "..\.."

#ifndef AppVersion
  #define AppVersion ""
  #define FileHandle
  #define FileLine
  #sub ReadVersionLine
    #define FileLine = Trim(FileRead(FileHandle))
    #if AppVersion == "" && Pos('version = "', FileLine) == 1
      #define AppVersion = Copy(FileLine, 12, Len(FileLine) - 12)
    #endif
  #endsub
  #for {FileHandle = FileOpen(RepoRoot + "\pyproject.toml"); FileHandle && !FileEof(FileHandle); ""} ReadVersionLine
  #if FileHandle
    #expr FileClose(FileHandle)
  #endif
  #if AppVersion == ""
    #error Cannot read the version from pyproject.toml: pass /DAppVersion=x.y.z
  #endif
#endif

#if !FileExists(RepoRoot + "\dist\PneumoScan\" + AppExe)
  #error dist\PneumoScan\PneumoScan.exe not found: build the bundle first (make installer)
#endif

[Setup]
; AppId identifies the app for upgrades and uninstall: never change it.
AppId={{ED8DD64A-90E1-4D7F-95F5-5B0DC0A8CB8C}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=PneumoScan project
AppComments=Chest X-ray pneumonia screening with Grad-CAM review. Research use only; not a medical device.
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install by default (no administrator rights); the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#RepoRoot}\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x64-setup
SetupIconFile={#RepoRoot}\resources\icons\pneumoscan.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
; TensorFlow makes the bundle large: solid LZMA2 in a separate process.
Compression=lzma2/normal
SolidCompression=yes
LZMAUseSeparateProcess=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#RepoRoot}\dist\PneumoScan\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Chest X-ray pneumonia screening (research use only)"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; The uninstaller removes the program folder only. Results, reader decisions and
; user-trained models stay in %APPDATA%\PneumoScan (delete that folder by hand).
